/**
 * flame-actors: FLAME for Node.js on nact actors.
 * The public surface is kept small; each export is documented where it is defined.
 */
export * from './errors.js';
