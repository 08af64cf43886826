// Moved to contract/ids.ts; this re-export goes once every importer uses the contract.
export * from '../../../contract/ids.js';
