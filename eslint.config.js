// Lint: the TypeScript-aware recommended rules, plus the house rules that keep the core honest
// (no `any`, no stray promises, no host time in the core).
import js from "@eslint/js"
import tseslint from "typescript-eslint"

export default tseslint.config(
  { ignores: ["dist/**", "node_modules/**", "coverage/**", ".buquet/**", "test-results/**", ".tmp/**"] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: { globals: { process: "readonly", console: "readonly", URL: "readonly", setTimeout: "readonly", clearTimeout: "readonly" } },
    rules: {
      "@typescript-eslint/no-explicit-any": "error",
      "@typescript-eslint/no-unused-vars": ["error", { argsIgnorePattern: "^_", varsIgnorePattern: "^_" }],
      "@typescript-eslint/no-namespace": "off",
      "@typescript-eslint/no-empty-object-type": "off",
      "require-yield": "off"
    }
  },
  {
    files: ["src/domain/**/*.ts", "src/services/**/*.ts", "src/layers/**/*.ts", "src/programs/**/*.ts"],
    rules: {
      "no-restricted-properties": ["error",
        { object: "Date", property: "now", message: "Use Effect's Clock (ServerClock) so TestClock drives time." }]
    }
  }
)
