export default async function globalTeardown(): Promise<void> {
  const stops = (globalThis as { __amendctlStops?: Array<() => Promise<void>> }).__amendctlStops ?? [];
  await Promise.allSettled(stops.map((stop) => stop()));
}
