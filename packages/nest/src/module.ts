import { Inject, Module, type DynamicModule, type OnApplicationShutdown, type Provider } from '@nestjs/common';
import { APP_GUARD } from '@nestjs/core';
import { type CredentialProvider, type Logger, type Source } from '@meshless/core';
import { toSource } from '@meshless/core/internal';
import { MeshlessGuard } from './guard.js';
import { MESHLESS_OPTIONS, MESHLESS_SOURCE } from './tokens.js';

/** Options of {@link MeshlessModule.forRoot}. */
export interface MeshlessModuleOptions {
  /**
   * Our certificate, key and bundle: a Source (`fileSource`, `workloadApiSource`…), a Credential,
   * or a factory returning one (e.g. `() => fileSource({ dir })`). A source the factory made is
   * closed when the application shuts down; one passed in is yours to close.
   */
  source: CredentialProvider | (() => CredentialProvider | Promise<CredentialProvider>);
  /** pino-compatible logger for route refusals (default: meshless's shared logger). */
  logger?: Logger;
  /** Register `MeshlessGuard` for the whole application (default true). */
  globalGuard?: boolean;
}

class SourceOwner implements OnApplicationShutdown {
  constructor(
    @Inject(MESHLESS_SOURCE) private readonly source: Source,
    @Inject(MESHLESS_OPTIONS) private readonly options: MeshlessModuleOptions,
  ) {}
  async onApplicationShutdown(): Promise<void> {
    if (typeof this.options.source === 'function') await this.source.close();
  }
}

/**
 * `MeshlessModule.forRoot({ source })`: provides the Source (inject it with
 * `@Inject(MESHLESS_SOURCE)`, or `app.get(MESHLESS_SOURCE)` to hand it to `createServer` /
 * `serverCredentials`) and registers `MeshlessGuard` globally, so `@RequirePeer(rules)` works on
 * any controller or gRPC handler. Global module: import it once, in the root module.
 */
@Module({})
export class MeshlessModule {
  static forRoot(options: MeshlessModuleOptions): DynamicModule {
    const providers: Provider[] = [
      { provide: MESHLESS_OPTIONS, useValue: options },
      {
        provide: MESHLESS_SOURCE,
        useFactory: async () => toSource(typeof options.source === 'function' ? await options.source() : options.source),
      },
      SourceOwner,
    ];
    if (options.globalGuard !== false) providers.push({ provide: APP_GUARD, useClass: MeshlessGuard });
    return { module: MeshlessModule, global: true, providers, exports: [MESHLESS_SOURCE, MESHLESS_OPTIONS] };
  }
}
