/**
 * Where the guides live for someone who installed the CLI from npm (the repository's docs/
 * folder is not in the package). Kept equal to `repository` in package.json by a test.
 */
export const docsUrl = 'https://github.com/meshless/meshless/blob/main/docs';

/** The absolute address of one guide, e.g. `docLink('getting-started.md')`. */
export function docLink(file: string): string {
  return `${docsUrl}/${file}`;
}
