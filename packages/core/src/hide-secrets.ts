/**
 * Makes properties of an object that hold secrets (a private key, a passphrase, session ticket
 * keys) non-enumerable, keeping their values and letting later assignments through: they no
 * longer appear in `util.inspect`, `JSON.stringify`, spreads or a logger given the object, and
 * code that reads or assigns them (Node's `setSecureContext`, grpc-js) works as before.
 * A property that does not exist yet is created empty and non-enumerable, so that a later
 * assignment does not make it enumerable.
 */
export function hideSecretProperties(target: object, names: readonly string[]): void {
  for (const name of names) {
    const descriptor = Object.getOwnPropertyDescriptor(target, name);
    if (descriptor !== undefined && !descriptor.configurable) continue;
    if (descriptor !== undefined && !('value' in descriptor)) {
      Object.defineProperty(target, name, { ...descriptor, enumerable: false });
      continue;
    }
    Object.defineProperty(target, name, { value: descriptor?.value, writable: true, configurable: true, enumerable: false });
  }
}

/** The properties Node's TLS server copies from its options and that hold secrets. */
export const TLS_SERVER_SECRET_PROPERTIES: readonly string[] = Object.freeze(['key', 'pfx', 'passphrase', 'ticketKeys']);
