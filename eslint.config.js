// @ts-check
import js from '@eslint/js';
import tseslint from 'typescript-eslint';
import globals from 'globals';
import { builtinModules } from 'node:module';

const nodeBuiltins = [...builtinModules, ...builtinModules.map((m) => `node:${m}`)];

const helperElectronFree = {
  paths: ['electron', 'vue', 'pinia'],
  patterns: [
    { group: ['**/src-main/**', '**/src-renderer/**'], message: 'helper/ is Electron-free' },
  ],
};

const HELPER_LIBRARIES = ['netlink', 'conntrack', 'nfqueue', 'nflog', 'packet'];

// helper/'s own layers: the top-level folders of helper/ (or single files in
// them) that the files of each folder may import, besides the folder itself.
// A folder not listed (cli/, and cli.ts) may import anything in helper/.
// Entries are read from a file directly inside the folder, where `../x/` is
// helper/x/; the listed folders have no subfolders.
const helperLayers = {
  // The floor: shared helpers (common), the native binding loader (native),
  // and the wire schemas that src-main shares (protocol).
  common: [],
  native: [],
  protocol: [],
  // The libraries, usable without the app (docs/netlink.md, conntrack.md,
  // nfqueue.md, nflog.md): none imports another, except for the next exception.
  netlink: ['native', 'common'],
  conntrack: ['netlink', 'common'],
  // NFQA_CT and NFULA_CT carry conntrack's own CTA_* attributes: nfqueue and
  // nflog decode them with conntrack's attribute codec into its Flow type, and
  // an nfqueue verdict sets CTA_MARK and CTA_LABELS. Copying that codec would
  // duplicate conntrack's largest decoder, so they may import these three
  // modules (which import only netlink and common), never conntrack's sockets.
  nfqueue: [
    'netlink',
    'common',
    'conntrack/decode.js',
    'conntrack/types.js',
    'conntrack/constants.js',
  ],
  nflog: ['netlink', 'common', 'conntrack/decode.js', 'conntrack/types.js'],
  packet: ['netlink', 'common'],
  // Subsystems built on the libraries; they do not import each other.
  attribution: [...HELPER_LIBRARIES, 'native', 'common'],
  dns: [...HELPER_LIBRARIES, 'common'],
  firewall: [...HELPER_LIBRARIES, 'common'],
  // The app's domain. Rules and history entries are the protocol's types
  // (valibot schemas in protocol/model.ts), so these two read protocol/.
  decisions: ['common', 'protocol'],
  history: ['common', 'protocol', 'decisions'],
  server: ['native', 'common', 'protocol'],
  // The daemon wires everything; only the command line sits above it.
  daemon: [
    ...HELPER_LIBRARIES,
    'native',
    'common',
    'protocol',
    'attribution',
    'dns',
    'firewall',
    'decisions',
    'history',
    'server',
  ],
};

/** The lint block for one folder of helper/. It replaces the helper/** block's
 * options for these files, so it repeats the Electron-free rule. */
function helperLayer(folder, allowed) {
  const escape = (text) => text.replace(/[.*+?^${}()|[\]\\]/gu, '\\$&');
  const permitted = [folder, ...allowed].map((entry) =>
    entry.includes('/') ? `${escape(entry)}$` : `${entry}(?:/|\\.js$)`,
  );
  return {
    files: [`helper/${folder}/**/*.ts`],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          ...helperElectronFree,
          patterns: [
            ...helperElectronFree.patterns,
            {
              regex: `^(?:\\.\\./)+(?!${permitted.join('|')})[^./]`,
              message: `helper/${folder} may import only ${allowed.join(', ') || 'itself'} (helperLayers in eslint.config.js)`,
            },
          ],
        },
      ],
    },
  };
}

// The import graph between layers, written once as data (DESIGN.md section 2):
// the helper never imports Electron or Vue, the renderer never imports Node.
const layering = [
  {
    // src-main layers, VS Code style: common is pure, node adds Node, only
    // electron-main and preload see Electron.
    files: ['src-main/common/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          paths: ['electron', ...nodeBuiltins],
          patterns: [
            {
              group: ['**/node/**', '**/electron-main/**', '**/preload/**'],
              message: 'common is pure',
            },
          ],
        },
      ],
    },
  },
  {
    files: ['src-main/node/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          paths: ['electron'],
          patterns: [
            { group: ['**/electron-main/**', '**/preload/**'], message: 'node is Electron-free' },
          ],
        },
      ],
    },
  },
  {
    // The sandboxed preload can require nothing but electron at run time.
    files: ['src-main/preload/**/*.ts'],
    rules: {
      '@typescript-eslint/no-restricted-imports': [
        'error',
        {
          paths: nodeBuiltins,
          patterns: [
            {
              group: ['./*', '../*'],
              allowTypeImports: true,
              message: 'a sandboxed preload is one file',
            },
          ],
        },
      ],
    },
  },
  {
    files: ['helper/**/*.ts'],
    rules: { 'no-restricted-imports': ['error', helperElectronFree] },
  },
  ...Object.entries(helperLayers).map(([folder, allowed]) => helperLayer(folder, allowed)),
  {
    // The renderer reaches main only through the PortcullisApi contract, which
    // lives in src-main/common (pure TypeScript shared by main and renderer).
    files: ['src-renderer/src/**/*.ts'],
    languageOptions: { globals: globals.browser },
    rules: {
      'no-restricted-imports': [
        'error',
        {
          paths: ['electron', ...nodeBuiltins],
          patterns: [
            {
              regex: '(^|/)(helper/|src-main/(?!common/))',
              message: 'the renderer talks only through the PortcullisApi (src-main/common/api.ts)',
            },
          ],
        },
      ],
    },
  },
  {
    // The UI benchmark's page side runs in the browser, like the renderer.
    files: ['bench/ui-page/**/*.ts'],
    languageOptions: { globals: globals.browser },
  },
  {
    // common: no Node, no DOM framework, no Electron; only the protocol's types from the helper.
    files: ['src-main/common/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          paths: ['electron', 'vue', 'pinia', ...nodeBuiltins],
          patterns: [
            {
              regex: '^\\.\\./(?!\\.\\./helper/protocol/)',
              message: 'src-main/common imports only itself and the helper protocol module',
            },
          ],
        },
      ],
    },
  },
];

// A product file over 500 lines or a function over 80 is split by job, or says
// why it must be so in its directive: `/* eslint-disable max-lines -- why */`
// at the top of the file, `// eslint-disable-next-line max-lines-per-function
// -- why` above the function. Blank lines and comments do not count. The C++
// of native/src is held to the same limits by hand.
const productSize = {
  files: ['helper/**/*.ts', 'src-main/**/*.ts', 'src-renderer/src/**/*.ts'],
  rules: {
    'max-lines': ['error', { max: 500, skipBlankLines: true, skipComments: true }],
    'max-lines-per-function': [
      'error',
      { max: 80, skipBlankLines: true, skipComments: true, IIFEs: true },
    ],
  },
};

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', 'native/build/**', 'bench/results/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: { globals: { ...globals.node } },
    rules: {
      '@typescript-eslint/no-explicit-any': 'error',
      '@typescript-eslint/no-unused-vars': [
        'error',
        { argsIgnorePattern: '^_', varsIgnorePattern: '^_' },
      ],
      '@typescript-eslint/consistent-type-imports': 'error',
      'no-constant-condition': ['error', { checkLoops: false }],
      eqeqeq: ['error', 'smart'],
    },
  },
  ...layering,
  productSize,
);
