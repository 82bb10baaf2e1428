// ESLint (flat config) for the whole tree: `npm run lint`, and .ci/run.
// It lives in .ci/ because the top level of the repository is kept to what a
// user reads; the lint script passes it with --config, and basePath makes
// every pattern below relative to the repository root.
//
// typescript-eslint's type-checked recommendations, with these changes (why):
// - no-this-alias allows `node`: Node-RED hands a node its own `this`, and the
//   closures of its handlers call it `node`.
// - no-unused-vars ignores names starting with _ (kept for a signature, or
//   dropped from a rest destructuring on purpose).
// - require-await is off: an async function that does not await still turns
//   a throw into a rejection, which callers of the promise-returning APIs rely on.
// - prefer-promise-reject-errors allows passing on a caught `unknown`.
// - restrict-template-expressions also allows booleans, arrays (they print
//   joined with commas) and `never`: a value a type guard ruled out is
//   exactly the one a message needs to print.
// - In tests the no-unsafe-* family and no-explicit-any are off: tests read
//   JSON from brokers, files and Node-RED as `any` and assert on it.
import js from '@eslint/js';
import globals from 'globals';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { basePath: '..' },
  {
    ignores: ['build/**', 'node_modules/**', 'native/build/**', 'native/tflite/**', 'native/prebuilds/**', '**/*.d.ts'],
  },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    files: ['**/*.ts', '**/*.tsx'],
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: new URL('..', import.meta.url).pathname },
    },
  },
  {
    files: ['**/*.ts', '**/*.tsx'],
    rules: {
      '@typescript-eslint/no-this-alias': ['error', { allowedNames: ['node'] }],
      '@typescript-eslint/no-unused-vars': [
        'error',
        {
          argsIgnorePattern: '^_',
          varsIgnorePattern: '^_',
          caughtErrorsIgnorePattern: '^_',
          ignoreRestSiblings: true,
        },
      ],
      '@typescript-eslint/require-await': 'off',
      '@typescript-eslint/prefer-promise-reject-errors': ['error', { allowThrowingUnknown: true }],
      '@typescript-eslint/restrict-template-expressions': [
        'error',
        { allowNumber: true, allowBoolean: true, allowArray: true, allowNever: true },
      ],
    },
  },
  {
    // TFLite builtin operator codes are plain numbers read from the model; the enum names the few that are rewritten.
    files: ['native/model-rewrite.ts'],
    rules: { '@typescript-eslint/no-unsafe-enum-comparison': 'off' },
  },
  {
    // Preact calls event handlers and drops what they return; the page's handlers are async and report
    // their own failures (a toast), so a promise handed to onClick is fine there.
    files: ['nodes/face-library/ui/**/*.tsx'],
    rules: { '@typescript-eslint/no-misused-promises': ['error', { checksVoidReturn: { attributes: false } }] },
  },
  {
    files: ['test/**/*.ts'],
    rules: {
      '@typescript-eslint/no-explicit-any': 'off',
      '@typescript-eslint/no-unsafe-argument': 'off',
      '@typescript-eslint/no-unsafe-assignment': 'off',
      '@typescript-eslint/no-unsafe-call': 'off',
      '@typescript-eslint/no-unsafe-member-access': 'off',
      '@typescript-eslint/no-unsafe-return': 'off',
    },
  },
  { files: ['**/*.js', '**/*.mjs', '**/*.cjs'], ...tseslint.configs.disableTypeChecked },
  {
    files: ['**/*.js', '**/*.mjs', '**/*.cjs'],
    languageOptions: { globals: { ...globals.node }, sourceType: 'module' },
    // Node's globals include `crypto`; a module that requires its own is fine.
    rules: { 'no-redeclare': ['error', { builtinGlobals: false }] },
  },
  {
    files: ['**/*.js', '**/*.cjs'],
    languageOptions: { sourceType: 'commonjs' },
    rules: { '@typescript-eslint/no-require-imports': 'off' },
  },
);
