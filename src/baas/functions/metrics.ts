/** Per-function metrics on /metrics: invocations by outcome, errors by code, duration, guest memory. */
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';

export class FunctionMetrics {
  readonly invocations: Counter<'tenant' | 'function' | 'status'>;
  readonly errors: Counter<'tenant' | 'function' | 'code'>;
  readonly duration: Histogram<'tenant' | 'function' | 'kind'>;
  readonly memory: Gauge<'tenant' | 'function'>;
  readonly triggerDeliveries: Counter<'tenant' | 'function' | 'kind' | 'result'>;
  readonly triggerEvents: Counter<'kind' | 'result'>;

  constructor(registry: Registry) {
    const registers = [registry];
    this.invocations = new Counter({
      name: 'performer_function_invocations_total',
      help: 'Function invocations by function and HTTP status answered',
      labelNames: ['tenant', 'function', 'status'],
      registers,
    });
    this.errors = new Counter({
      name: 'performer_function_errors_total',
      help: 'Failed function invocations by error code (WORKER_ERROR, BOOT_ERROR, WORKER_LIMIT, INVALID_JWT)',
      labelNames: ['tenant', 'function', 'code'],
      registers,
    });
    this.duration = new Histogram({
      name: 'performer_function_duration_seconds',
      help: 'Function invocation time, queueing included',
      labelNames: ['tenant', 'function', 'kind'],
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers,
    });
    this.memory = new Gauge({
      name: 'performer_function_memory_bytes',
      help: "A function's guest memory at the end of its last invocation (WebAssembly memory or JS engine heap)",
      labelNames: ['tenant', 'function'],
      registers,
    });
    this.triggerDeliveries = new Counter({
      name: 'performer_function_trigger_deliveries_total',
      help: 'Trigger deliveries by kind and result (delivered, retry, failed)',
      labelNames: ['tenant', 'function', 'kind', 'result'],
      registers,
    });
    this.triggerEvents = new Counter({
      name: 'performer_function_trigger_events_total',
      help: 'Trigger events seen by this node: recorded for delivery, or a duplicate already recorded (by another node, or a repeat)',
      labelNames: ['kind', 'result'],
      registers,
    });
  }
}
