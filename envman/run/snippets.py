"""Ready-to-paste client snippets for a served model: curl and the openai client.

The key itself is never printed: the snippets read it from ``$API_KEY`` (inside double
quotes, so the shell expands it). They are tested by running them against a served model.
"""

from __future__ import annotations

import json
import shlex


def curl(url: str, served: str, api_key: bool) -> str:
    body = json.dumps({"model": served, "messages": [{"role": "user", "content": "Hello!"}], "max_tokens": 64})
    auth = ' -H "Authorization: Bearer $API_KEY"' if api_key else ""
    endpoint = shlex.quote(url + "/chat/completions")
    return f"curl {endpoint} -H 'Content-Type: application/json'{auth} -d {shlex.quote(body)}"


def python(url: str, served: str, api_key: bool) -> list[str]:
    key = 'os.environ["API_KEY"]' if api_key else '"EMPTY"'
    message = json.dumps([{"role": "user", "content": "Hello!"}])
    return [
        *(["import os"] if api_key else []),
        "from openai import OpenAI",
        f"client = OpenAI(base_url={json.dumps(url)}, api_key={key})",
        f"reply = client.chat.completions.create(model={json.dumps(served)}, messages={message}, max_tokens=64)",
        "print(reply.choices[0].message.content)",
    ]


def lines(url: str, served: str, api_key: bool) -> list[str]:
    """The snippet block ``envman up`` prints."""
    out = ["curl:" + (" (export API_KEY first)" if api_key else ""), "  " + curl(url, served, api_key)]
    out.append("python (pip install openai):")
    out += ["  " + line for line in python(url, served, api_key)]
    return out
