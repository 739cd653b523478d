// @ts-check
import js from '@eslint/js';
import tseslint from 'typescript-eslint';
import globals from 'globals';

export default tseslint.config(
  { ignores: ['dist/', 'coverage/', 'node_modules/', 'bench/results/', 'tsraft-data/', '.scratch/'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: { globals: { ...globals.node } },
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/consistent-type-imports': 'error',
    },
  },
  {
    // STYLE.md convention 4: the core is pure, and the linter says so.
    files: ['src/core/**/*.ts'],
    rules: {
      'no-restricted-globals': [
        'error',
        { name: 'Date', message: 'core is pure: time is tick()' },
        { name: 'setTimeout', message: 'core is pure: time is tick()' },
        { name: 'setInterval', message: 'core is pure: time is tick()' },
        { name: 'setImmediate', message: 'core is pure: time is tick()' },
        { name: 'queueMicrotask', message: 'core is pure' },
        { name: 'performance', message: 'core is pure: time is tick()' },
        { name: 'process', message: 'core is pure: no process access' },
        { name: 'Buffer', message: 'core is pure: use Uint8Array' },
      ],
      'no-restricted-properties': [
        'error',
        { object: 'Math', property: 'random', message: 'core is pure: use the seeded Rand from config' },
        { object: 'Date', property: 'now', message: 'core is pure: time is tick()' },
      ],
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            { group: ['node:*'], message: 'core imports nothing outside itself' },
            { group: ['../*', '!../errors.js'], message: 'core imports nothing outside itself but the error catalogue' },
          ],
        },
      ],
    },
  },
);
