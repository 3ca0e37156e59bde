/**
 * Pod IPs from 127.1.0.0/16. All of 127/8 answers locally on Linux without any set-up, so each pod
 * can listen on its own address with the ports it would use in a cluster. Each cluster starts at a
 * random offset so that two emulators on one machine rarely hand out the same address.
 */

const SUBNET_SIZE = 256 * 254;

export class PodAddressAllocator {
  private readonly inUse = new Set<number>();
  private next: number;

  constructor(start: number = Math.floor(Math.random() * SUBNET_SIZE)) {
    this.next = ((start % SUBNET_SIZE) + SUBNET_SIZE) % SUBNET_SIZE;
  }

  allocate(): string {
    for (let tries = 0; tries < SUBNET_SIZE; tries++) {
      const candidate = this.next;
      this.next = (this.next + 1) % SUBNET_SIZE;
      if (!this.inUse.has(candidate)) {
        this.inUse.add(candidate);
        return addressOf(candidate);
      }
    }
    throw new Error('emulated cluster: all 65024 pod addresses in 127.1.0.0/16 are in use');
  }

  release(address: string): void {
    const m = /^127\.1\.(\d+)\.(\d+)$/.exec(address);
    if (m) this.inUse.delete(Number(m[1]) * 254 + Number(m[2]) - 1);
  }
}

function addressOf(index: number): string {
  return `127.1.${Math.floor(index / 254)}.${(index % 254) + 1}`;
}
