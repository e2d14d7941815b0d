/**
 * A Map that keeps at most `max` entries, least recently used first out: a `get` that finds its
 * key and every `set` count as a use (Map order is the recency order: a use moves the key to the
 * end; the first key is the one evicted). meshless's one bounded-cache policy — session caches,
 * verified chains, per-origin state, log rate limits. `has`, `peek` and iteration do not count as a use.
 */
export class BoundedMap<K, V> extends Map<K, V> {
  readonly max: number;

  /** @param max most entries kept (0 keeps none). */
  constructor(max: number) {
    super();
    this.max = max;
  }

  /** The value for `key`, now the most recently used. */
  override get(key: K): V | undefined {
    if (!super.has(key)) return undefined;
    const value = super.get(key) as V;
    super.delete(key);
    super.set(key, value);
    return value;
  }

  /** The value for `key`, leaving its recency alone. */
  peek(key: K): V | undefined {
    return super.get(key);
  }

  /** Stores `value` as the most recently used, evicting the least recently used one when full. */
  override set(key: K, value: V): this {
    if (super.delete(key) || this.size < this.max) return super.set(key, value);
    if (this.max <= 0) return this;
    const oldest = this.keys().next();
    if (!oldest.done) super.delete(oldest.value);
    return super.set(key, value);
  }
}
