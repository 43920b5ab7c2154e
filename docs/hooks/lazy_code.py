"""MkDocs hook: the code of a collapsed block joins the page when the reader opens the block.

The long pages show each snippet's sections and keep the rest in collapsed blocks (`??? note`): the whole file,
the helpers a section uses, the other functions of a file. Those blocks hold about half of a long page's elements
(on /arcface/, 8,612 of 18,176), and a browser styles every one of them at start-up although none is visible.

So every closed `<details>` whose body is nothing but highlighted code keeps that code in a `<template>`: the HTML
parser still reads it (the bytes, the search index and the page text are unchanged) but it is no part of the
document, so it costs no style, layout or start-up script. docs/assets/javascripts/site.js moves it into the block
the first time the block opens and gives it the copy button Material gives every other code block. Without
JavaScript the block offers a link to the file on GitHub instead (`<noscript>`).

The code leaves the page in on_page_content, before the search plugin reads the page (on_page_context), and comes
back as a template in on_post_page (after docs/hooks/katex.py; code holds no math). So the search index holds the
prose and the sections a page shows, not second copies of whole files: about two thirds of the index was such code.
"""

import re

DETAILS = re.compile(r"<details(?P<attrs>[^>]*)>(?P<summary>\s*<summary>.*?</summary>)(?P<body>.*?)</details>", re.S)
CODE_BLOCK = re.compile(r'<div class="language-[\w+-]+ highlight">.*?</code></pre></div>', re.S)
TITLE = re.compile(r'<span class="filename">([^<]+)</span>')
OPEN = re.compile(r"\bopen\b")
LINK_TEXT = {"ko": "GitHub에서 파일 보기: ", "en": "The file on GitHub: "}


PLACEHOLDER = re.compile(r"<!--lazy-code:(\d+)-->")
_stash: dict[str, list[str]] = {}


def on_page_content(html, page, config, files):
    """Move the code of every closed code-only block out of the page (the search plugin indexes what is left) and
    keep it, as a template, for on_post_page; the block gets a placeholder and a <noscript> link to the file."""
    lang = config.extra.get("this_language", config.theme.get("language", "en"))
    base = config.extra.get("github_blob", "")  # the same address as the page's <meta name="source-base">
    blocks = _stash[page.file.src_uri] = []

    def replace(match):
        attrs, body = match["attrs"], match["body"]
        if OPEN.search(attrs) or not CODE_BLOCK.search(body) or CODE_BLOCK.sub("", body).strip():
            return match[0]
        blocks.append(f'<template class="lazy-code">{body}</template>')
        paths = dict.fromkeys(TITLE.findall(body))  # in order, once each
        fallback = ""
        if base and paths:
            links = ", ".join(f'<a href="{base}{path}">{path}</a>' for path in paths)
            fallback = f"<noscript><p>{LINK_TEXT.get(lang, LINK_TEXT['en'])}{links}</p></noscript>"
        return f"<details{attrs}>{match['summary']}<!--lazy-code:{len(blocks) - 1}-->{fallback}</details>"

    return DETAILS.sub(replace, html)


def on_post_page(output, page, config):
    blocks = _stash.pop(page.file.src_uri, [])
    return PLACEHOLDER.sub(lambda match: blocks[int(match[1])], output)
