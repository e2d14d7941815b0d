import grpc from '@grpc/grpc-js';
import { encodeX509SvidRequest } from './proto.js';

/** The full method path: the spec's proto has no package, so the service is plain `SpiffeWorkloadAPI`. */
export const FETCH_X509_SVID = '/SpiffeWorkloadAPI/FetchX509SVID';

/** The security header every Workload API call must carry (servers answer InvalidArgument without it). */
export const SECURITY_HEADER = 'workload.spiffe.io';

/** How a call ended. */
export interface CallEnd {
  code: grpc.status;
  /** `UNAVAILABLE`, `PERMISSION_DENIED`… */
  codeName: string;
  details: string;
}

export interface StreamHandlers {
  /** Response headers arrived: the server accepted the call. */
  onConnected(): void;
  /** One raw `X509SVIDResponse`. */
  onMessage(bytes: Buffer): void;
  /** The call is over (never called after `cancel()`). */
  onEnd(end: CallEnd): void;
}

/** A running `FetchX509SVID` call on its own channel. */
export interface X509SvidStream {
  /** Ends the call and closes its channel; no handler is called afterwards. */
  cancel(): void;
}

export function statusName(code: number): string {
  return (grpc.status as unknown as Record<number, string>)[code] ?? `status ${code}`;
}

/**
 * Opens one `FetchX509SVID` stream with the security header, on a channel of its own (a local
 * subchannel pool: no connection or backoff state shared with other calls, so each reconnect
 * attempt dials afresh and the source's own backoff is the only one).
 */
export function openX509SvidStream(target: string, handlers: StreamHandlers): X509SvidStream {
  const client = new grpc.Client(target, grpc.credentials.createInsecure(), {
    'grpc.use_local_subchannel_pool': 1,
    // Messages carry every SVID and bundle; federation can make them large.
    'grpc.max_receive_message_length': 64 * 1024 * 1024,
    // The call fails fast when nothing listens; the source decides when to retry.
    'grpc.enable_retries': 0,
    'grpc.enable_channelz': 0,
  });
  const metadata = new grpc.Metadata();
  metadata.set(SECURITY_HEADER, 'true');
  let over = false;
  const call = client.makeServerStreamRequest<Buffer, Buffer>(
    FETCH_X509_SVID,
    () => encodeX509SvidRequest(),
    (bytes) => bytes,
    Buffer.alloc(0),
    metadata,
  );
  call.on('metadata', () => {
    if (!over) handlers.onConnected();
  });
  call.on('data', (bytes: Buffer) => {
    if (!over) handlers.onMessage(bytes);
  });
  // grpc-js emits 'error' then 'status' (then 'end'): the final code is read from 'status'.
  call.on('error', () => undefined);
  call.on('status', (s: grpc.StatusObject) => {
    if (over) return;
    over = true;
    client.close();
    handlers.onEnd({ code: s.code, codeName: statusName(s.code), details: s.details });
  });
  return {
    cancel() {
      if (over) return;
      over = true;
      call.cancel();
      client.close();
    },
  };
}
