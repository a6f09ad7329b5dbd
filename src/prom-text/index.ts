/** The Prometheus text exposition format: the parser's public face (escaping is in format.ts). */
export { clearSeriesCache, parsePromText } from './parser.ts';
export * from './types.ts';
