// nbconvert's notebook template loads MathJax from a CDN; mkdocs-jupyter points it here instead
// (custom_mathjax_url). Nothing to do: katex-init.js renders the math of notebook pages with the site's KaTeX.
