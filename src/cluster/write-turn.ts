/**
 * The end of an event-loop turn in which frames of several messages arrived, shared by every link
 * of a node. Handling such a frame makes messages for its own link (replies) and for others (the
 * requests that callers make next, spread over several runners): all of them wait for the end of
 * the turn and leave as one frame per link. Socket writes, not encoding, bound a link's rate on
 * small machines, so a link must not write once for the first message of a burst and again for
 * the rest, and a burst read on one link must not make every other link write message by message.
 */

/** A link with messages to write at the end of the turn. */
export interface TurnWriter {
  /** Writes what is queued, as one frame (never throws). */
  endOfTurn(): void;
}

export class WriteTurn {
  #receiving = false;
  #writers: TurnWriter[] = [];

  /** A frame of several messages arrived in this turn: writes wait for its end. */
  get receiving(): boolean {
    return this.#receiving;
  }

  /** Called for a frame of several messages: writes of every link wait for the end of this turn. */
  received(): void {
    if (this.#receiving) return;
    this.#receiving = true;
    // The check phase follows the poll phase at once: a reply waits no longer than a write
    // made in the same turn would have.
    setImmediate(this.#end);
  }

  /** `writer` has messages for the end of this turn (the caller adds each writer once per turn). */
  defer(writer: TurnWriter): void {
    this.#writers.push(writer);
  }

  readonly #end = (): void => {
    this.#receiving = false;
    const writers = this.#writers;
    this.#writers = [];
    for (const writer of writers) writer.endOfTurn();
  };
}
