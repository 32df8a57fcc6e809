// Type declarations for what the bundler imports besides TypeScript: the stylesheet.
declare module '*.css'
