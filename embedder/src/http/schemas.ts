/** The embedder validates its requests with the wire contract (contract/internal.ts). */
export { Id, PointId, Text } from '../../../contract/rules.js';
export { SearchFilters } from '../../../contract/internal.js';
