// @ts-check
import js from '@eslint/js';
import tseslint from 'typescript-eslint';
import globals from 'globals';
import { builtinModules } from 'node:module';

const nodeBuiltins = [...builtinModules, ...builtinModules.map((m) => `node:${m}`)];

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
    rules: {
      'no-restricted-imports': [
        'error',
        {
          paths: ['electron', 'vue', 'pinia'],
          patterns: [
            {
              group: ['**/src-main/**', '**/src-renderer/**'],
              message: 'helper/ is Electron-free',
            },
          ],
        },
      ],
    },
  },
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
);
