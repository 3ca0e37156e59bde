/**
 * The bare ws + msgpackr baseline: a child that dials the parent and answers each frame
 * `{ id, a, b }` with a frame `{ id, r }` (one frame per message, no coalescing).
 */
import { Packr } from 'msgpackr';
import { WebSocket } from 'ws';

const packr = new Packr({ useRecords: false });
const ws = new WebSocket(process.env.PEER_URL!, { perMessageDeflate: false, maxPayload: 1024 * 1024 });
ws.on('message', (data: Buffer) => {
  const m = packr.unpack(data) as { id: number; a: number; b: number };
  ws.send(packr.pack({ id: m.id, r: m.a + m.b }));
});
ws.on('close', () => process.exit(0));
process.on('disconnect', () => process.exit(0));
