import type { TenantRuntime } from './tenant.js';

/** The largest payload a tenant may send: upstream allows the tenant's limit plus 500 bytes of envelope slack. */
export function payloadLimitBytes(maxPayloadSizeInKb: number): number {
  return maxPayloadSizeInKb * 1000 + 500;
}

export const LimitMessage = {
  events: 'Too many messages per second',
  bytes: 'Too many bytes per second',
} as const;

/**
 * Which traffic limit the tenant's rolling counters have tripped, if any: upstream's events per second, and
 * bytes per second, which upstream stores but never enforces.
 */
export function trafficLimitHit(tenant: TenantRuntime): { message: string; code: string } | null {
  const limits = tenant.settings.limits;
  if (tenant.events.rate >= limits.maxEventsPerSecond) return { message: LimitMessage.events, code: 'MessagePerSecondRateLimitReached' };
  if (tenant.bytes.rate >= limits.maxBytesPerSecond) return { message: LimitMessage.bytes, code: 'BytesPerSecondRateLimitReached' };
  return null;
}

/** Upstream shuts a channel down on its next delivery once the limiter tripped: all local subscribers of a topic. */
export function shutdownTopic(tenant: TenantRuntime, key: string, message: string, code: string): void {
  const channels = tenant.channelsByKey.get(key);
  if (!channels || channels.size === 0) return;
  tenant.log.warn({ error_code: code, channels: channels.size }, 'tenant over its rate limit; channels shut down');
  for (const channel of [...channels]) channel.shutdown(message);
}
