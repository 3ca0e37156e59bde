/** The baseline of a cold start: a bare Node process that connects a ws and sends one message. */
import { WebSocket } from 'ws';

const ws = new WebSocket(process.env.PROBE_URL!, { perMessageDeflate: false });
ws.on('open', () => ws.send('up'));
ws.on('close', () => process.exit(0));
