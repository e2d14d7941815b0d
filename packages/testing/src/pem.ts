/** PEM armour in the standard form: 64-column base64 lines, ending with a newline. */
export type PemLabel = 'CERTIFICATE' | 'PRIVATE KEY';

export function toPem(der: ArrayBuffer | Uint8Array, label: PemLabel): string {
  const base64 = Buffer.from(der instanceof Uint8Array ? der : new Uint8Array(der)).toString('base64');
  const lines = base64.match(/.{1,64}/g) ?? [];
  return `-----BEGIN ${label}-----\n${lines.join('\n')}\n-----END ${label}-----\n`;
}
