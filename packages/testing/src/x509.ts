/**
 * The one place that loads @peculiar/x509. The library resolves its algorithm providers through
 * tsyringe, which needs the `reflect-metadata` polyfill loaded first, and it signs with whatever
 * WebCrypto implementation it was given: Node's own.
 */
import 'reflect-metadata';
import { webcrypto } from 'node:crypto';
import * as x509 from '@peculiar/x509';

x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);

export { x509, webcrypto };
