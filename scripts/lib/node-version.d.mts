/** Types of node-version.mjs (plain JavaScript, so that it runs before tsx is loaded). */
export declare function requiredNode(): [number, number, number];
export declare function howToGetNode(major: number, platform?: string, arch?: string): string[];
export declare function nodeVersionProblem(
  program: string,
  version?: string,
  required?: [number, number, number],
  platform?: string,
  arch?: string,
): string[] | undefined;
export declare function requireNode(program: string): void;
