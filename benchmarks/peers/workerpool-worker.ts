/** A workerpool process worker (`workerType: 'process'`) exposing the benchmark's call. */
import workerpool from 'workerpool';

workerpool.worker({ add: (a: number, b: number) => a + b });
