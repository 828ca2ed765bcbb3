/**
 * Tracing with OpenTelemetry: one trace from the caller (the API request, a CLI submit) through
 * the amendment workflow and its activities to each target call.
 *
 * - On when an OTLP endpoint is configured (`OTEL_EXPORTER_OTLP_ENDPOINT` or
 *   `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`) and not switched off (`OTEL_TRACES_EXPORTER=none`,
 *   `OTEL_SDK_DISABLED=true`); the exporter reads the other `OTEL_*` variables itself (headers,
 *   protocol, timeout). `OTEL_SERVICE_NAME` names the process (default `amendctl-worker`).
 * - The client interceptor puts the caller's context in the workflow's start; the workflow
 *   interceptors (in the traced workflow bundle) and the activity interceptor continue it; the
 *   batch activities open a span per target call (`idp ensureAccount`).
 * - Off, nothing is loaded into the workflow sandbox: workers use the plain bundle.
 */
import { context, propagation, SpanStatusCode, trace, type Tracer } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { CompositePropagator, W3CBaggagePropagator, W3CTraceContextPropagator } from '@opentelemetry/core';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { Resource } from '@opentelemetry/resources';
import { BasicTracerProvider, BatchSpanProcessor, type SpanProcessor } from '@opentelemetry/sdk-trace-base';

export interface Tracing {
  processor: SpanProcessor;
  resource: Resource;
  provider: BasicTracerProvider;
  shutdown(): Promise<void>;
}

let installed: Tracing | undefined;

/** The tracing this process installed, if any. */
export function currentTracing(): Tracing | undefined {
  return installed;
}

/** amendctl's tracer (a no-op until tracing is installed). */
export function tracer(): Tracer {
  return trace.getTracer('amendctl');
}

/** Whether the environment asks for traces. */
export function tracingWanted(env: NodeJS.ProcessEnv = process.env): boolean {
  if (env.OTEL_SDK_DISABLED === 'true' || env.OTEL_TRACES_EXPORTER === 'none') return false;
  return Boolean(env.OTEL_EXPORTER_OTLP_ENDPOINT || env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT);
}

/** Install tracing once per process: the given span processor (tests collect spans in memory), else OTLP over HTTP from `OTEL_*`. */
export function installTracing(
  opts: { processor?: SpanProcessor; serviceName?: string; env?: NodeJS.ProcessEnv } = {},
): Tracing {
  if (installed) return installed;
  const env = opts.env ?? process.env;
  const resource = new Resource({ 'service.name': env.OTEL_SERVICE_NAME ?? opts.serviceName ?? 'amendctl-worker' });
  const processor = opts.processor ?? new BatchSpanProcessor(new OTLPTraceExporter());
  const provider = new BasicTracerProvider({ resource, spanProcessors: [processor] });
  context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
  propagation.setGlobalPropagator(
    new CompositePropagator({ propagators: [new W3CTraceContextPropagator(), new W3CBaggagePropagator()] }),
  );
  trace.setGlobalTracerProvider(provider);
  installed = { processor, resource, provider, shutdown: () => provider.shutdown() };
  return installed;
}

/** Tracing as the environment asks: installed (and returned) when wanted, else undefined. */
export function tracingFromEnv(serviceName: string, env: NodeJS.ProcessEnv = process.env): Tracing | undefined {
  return tracingWanted(env) ? installTracing({ serviceName, env }) : undefined;
}

/** The current trace id (32 hex digits), if a span is active. */
export function currentTraceId(): string | undefined {
  const ctx = trace.getActiveSpan()?.spanContext();
  return ctx && ctx.traceId !== '00000000000000000000000000000000' ? ctx.traceId : undefined;
}

/** `fn` in a span of its own (an error marks the span and is thrown on). Attributes never name a person. */
export function inSpan<T>(name: string, attributes: Record<string, string | number>, fn: () => Promise<T>): Promise<T> {
  return tracer().startActiveSpan(name, { attributes }, async (span) => {
    try {
      return await fn();
    } catch (err) {
      span.recordException(err as Error);
      span.setStatus({ code: SpanStatusCode.ERROR, message: (err as Error)?.message });
      throw err;
    } finally {
      span.end();
    }
  });
}
