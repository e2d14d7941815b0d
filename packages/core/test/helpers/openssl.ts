import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** Mints certificates with the `openssl` CLI, to prove we read what real tools write. */
export class OpenSslCA {
  readonly dir = mkdtempSync(join(tmpdir(), 'meshless-openssl-'));
  readonly caCert: string;
  private n = 0;
  /** Encrypted key file → the plain key it was made from (to sign its CSR). */
  private readonly plainOf = new Map<string, string>();

  constructor(subject = '/CN=openssl test root') {
    this.run(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', 'ca.key', '-out', 'ca.crt', '-days', '2',
      '-subj', subject, '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign']);
    this.caCert = this.read('ca.crt');
  }

  static available(): boolean {
    try {
      execFileSync('openssl', ['version'], { stdio: 'ignore' });
      return true;
    } catch {
      return false;
    }
  }

  run(args: string[]): void {
    execFileSync('openssl', args, { cwd: this.dir, stdio: ['ignore', 'ignore', 'pipe'] });
  }

  read(name: string): string {
    return readFileSync(join(this.dir, name), 'utf8');
  }

  /** Generates a key in the given format and returns its file name. */
  key(kind: 'rsa-pkcs1' | 'rsa-pkcs8' | 'ec-sec1' | 'ec-pkcs8' | 'ed25519' | 'ec-pkcs8-encrypted', passphrase = 'secret'): string {
    const name = `k${++this.n}.key`;
    switch (kind) {
      case 'rsa-pkcs1': this.run(['genrsa', '-traditional', '-out', name, '2048']); break;
      case 'rsa-pkcs8': this.run(['genpkey', '-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:2048', '-out', name]); break;
      case 'ec-sec1': this.run(['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', name]); break;
      case 'ec-pkcs8': this.run(['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', name]); break;
      case 'ed25519': this.run(['genpkey', '-algorithm', 'ed25519', '-out', name]); break;
      case 'ec-pkcs8-encrypted': {
        const plain = this.key('ec-sec1');
        this.run(['pkcs8', '-topk8', '-v2', 'aes-256-cbc', '-passout', `pass:${passphrase}`, '-in', plain, '-out', name]);
        this.plainOf.set(name, plain);
        break;
      }
    }
    return name;
  }

  /** Issues a leaf for `keyFile` with the given SAN section lines (e.g. `URI.1 = spiffe://…`). */
  issue(keyFile: string, sans: string[], opts: { cn?: string; days?: number; ca?: boolean } = {}): string {
    const id = ++this.n;
    const ext = join(this.dir, `ext${id}.cnf`);
    writeFileSync(ext, [
      `basicConstraints = critical,CA:${opts.ca ? 'TRUE' : 'FALSE'}`,
      opts.ca ? 'keyUsage = critical,keyCertSign' : 'keyUsage = critical,digitalSignature,keyEncipherment',
      'extendedKeyUsage = serverAuth,clientAuth',
      ...(sans.length ? ['subjectAltName = @alt', '[alt]', ...sans] : []),
      '',
    ].join('\n'));
    this.run(['req', '-new', '-key', this.plainOf.get(keyFile) ?? keyFile, '-subj', `/CN=${opts.cn ?? 'leaf'}`, '-out', `l${id}.csr`]);
    this.run(['x509', '-req', '-in', `l${id}.csr`, '-CA', 'ca.crt', '-CAkey', 'ca.key', '-set_serial', String(1000 + id), '-days', String(opts.days ?? 1), '-out', `l${id}.crt`, '-extfile', ext]);
    return this.read(`l${id}.crt`);
  }

  close(): void {
    rmSync(this.dir, { recursive: true, force: true });
  }
}
