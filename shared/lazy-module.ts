/**
 * A module loaded when it is first needed rather than when its importer is, synchronously
 * (require of an ES module, Node >= 22.12): for what a generation's start can do without and a
 * synchronous API needs later (issue #19). It is the very module instance an import elsewhere
 * gets. A relative specifier is written without its extension and takes the importer's: .ts from
 * the sources of a checkout, .js from the compiled dist/.
 */
export function lazyModule<M>(importer: string, specifier: string): () => M {
  let loaded: M | undefined;
  return () => {
    if (loaded === undefined) {
      const load = process.getBuiltinModule('node:module').createRequire(importer);
      const extension = specifier.startsWith('.') ? importer.slice(importer.lastIndexOf('.')) : '';
      loaded = load(`${specifier}${extension}`) as M;
    }
    return loaded;
  };
}
