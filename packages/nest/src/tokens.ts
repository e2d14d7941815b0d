/** Injection token of the credential Source that `MeshlessModule.forRoot` provides. */
export const MESHLESS_SOURCE = Symbol.for('@meshless/nest:source');
/** Injection token of the module options (logger…), read by `MeshlessGuard`. */
export const MESHLESS_OPTIONS = Symbol.for('@meshless/nest:options');
/** Metadata key that `@RequirePeer` writes on a controller or handler. */
export const REQUIRE_PEER = '@meshless/nest:require-peer';
