#!/usr/bin/env python3
"""Pressroom: a small publishing app that Strangler's code knows nothing about.

It is the "your own monolith" of docs/guides/02-your-own-monolith.md: Python's
standard library only (http.server and sqlite3), its own OpenAPI file
(openapi.yaml), its own database. The guide puts Strangler in front of it and
moves its authors module to a candidate: a second process of this app that
serves only /api/authors (--modules authors).

    python3 app.py --port 8599 --db pressroom.db
    python3 app.py --port 8600 --db pressroom.db --modules authors
"""
import argparse
import json
import re
import sqlite3
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

SCHEMA = """
CREATE TABLE IF NOT EXISTS authors (
    id INTEGER PRIMARY KEY, name TEXT NOT NULL, email TEXT NOT NULL UNIQUE);
CREATE TABLE IF NOT EXISTS articles (
    slug TEXT PRIMARY KEY, title TEXT NOT NULL, body TEXT NOT NULL,
    author_id INTEGER NOT NULL REFERENCES authors(id));
CREATE TABLE IF NOT EXISTS comments (
    id INTEGER PRIMARY KEY, slug TEXT NOT NULL REFERENCES articles(slug),
    text TEXT NOT NULL);
"""

SEED_AUTHORS = [(1, "Ada Lovelace", "ada@example.org"),
                (2, "Grace Hopper", "grace@example.org"),
                (3, "Alan Turing", "alan@example.org")]


def open_db(path):
    db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
    db.row_factory = sqlite3.Row
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA busy_timeout=5000")
    db.executescript(SCHEMA)
    return db


def seed(db):
    if db.execute("SELECT COUNT(*) FROM authors").fetchone()[0]:
        return
    db.executemany("INSERT INTO authors VALUES (?, ?, ?)", SEED_AUTHORS)
    for i in range(1, 31):
        db.execute("INSERT INTO articles VALUES (?, ?, ?, ?)",
                   (f"how-to-{i}", f"How to {i}", f"Step one of {i}.", 1 + i % 3))


def slugify(title):
    return re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")


class Handler(BaseHTTPRequestHandler):
    """Handler serves the JSON API and two HTML pages."""

    server_version = "Pressroom/1.0"
    protocol_version = "HTTP/1.1"
    # The headers and the body are two writes: without TCP_NODELAY, Nagle's
    # algorithm holds the body until the client's delayed ACK, 40 ms later,
    # on every answer of a kept-alive connection.
    disable_nagle_algorithm = True
    db = None
    lock = threading.Lock()
    # modules limits what this process serves: None is everything.
    modules = None

    def log_message(self, *args):
        pass

    def send(self, status, body, ctype="application/json"):
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def problem(self, status, title):
        self.send(status, {"title": title, "status": status}, "application/problem+json")

    def read_json(self):
        n = int(self.headers.get("Content-Length") or 0)
        if n > 1 << 20:
            raise ValueError("body too large")
        try:
            v = json.loads(self.rfile.read(n) or b"null")
        except (ValueError, UnicodeDecodeError):
            raise ValueError("body is not JSON")
        if not isinstance(v, dict):
            raise ValueError("body is not a JSON object")
        return v

    def route(self, method):
        url = urlsplit(self.path)
        parts = [p for p in url.path.split("/") if p]
        query = parse_qs(url.query)
        if parts[:1] == ["api"] and len(parts) >= 2:
            module = parts[1]
            if self.modules is not None and module not in self.modules:
                return self.problem(404, "not served here")
            fn = getattr(self, f"{module}_{method.lower()}", None)
            if fn is None:
                return self.problem(404 if method == "GET" else 405, "no such route")
            try:
                return fn(parts[2:], query)
            except ValueError as e:
                return self.problem(400, str(e))
            except sqlite3.IntegrityError as e:
                return self.problem(409, str(e))
        if self.modules is not None:
            return self.problem(404, "not served here")
        if method == "GET" and url.path == "/health":
            return self.send(200, {"ok": True})
        if method == "GET" and url.path in ("/", "/about"):
            page = "<html><body><h1>Pressroom</h1></body></html>" if url.path == "/" else \
                "<html><body><p>A small publishing app.</p></body></html>"
            return self.send(200, page.encode(), "text/html; charset=utf-8")
        return self.problem(404, "no such page")

    def do_GET(self):
        self.route("GET")

    def do_POST(self):
        self.route("POST")

    def do_DELETE(self):
        self.route("DELETE")

    # Authors.
    def authors_get(self, rest, query):
        with self.lock:
            if not rest:
                rows = self.db.execute("SELECT id, name, email FROM authors ORDER BY id").fetchall()
                return self.send(200, {"authors": [dict(r) for r in rows]})
            if len(rest) == 1 and rest[0].isdigit():
                r = self.db.execute("SELECT id, name, email FROM authors WHERE id = ?", (int(rest[0]),)).fetchone()
                return self.send(200, dict(r)) if r else self.problem(404, "no such author")
        return self.problem(404, "no such route")

    def authors_post(self, rest, query):
        if rest:
            return self.problem(405, "no such route")
        v = self.read_json()
        name, email = v.get("name"), v.get("email")
        if not isinstance(name, str) or not name or not isinstance(email, str) or "@" not in email:
            return self.problem(422, "name and email are required")
        with self.lock:
            cur = self.db.execute("INSERT INTO authors (name, email) VALUES (?, ?)", (name, email))
            r = self.db.execute("SELECT id, name, email FROM authors WHERE id = ?", (cur.lastrowid,)).fetchone()
        return self.send(201, dict(r))

    # Articles and their comments.
    def articles_get(self, rest, query):
        with self.lock:
            if not rest:
                author = query.get("author", [None])[0]
                sql, args = "SELECT slug, title, author_id FROM articles", ()
                if author is not None:
                    sql, args = sql + " WHERE author_id = ?", (author,)
                rows = self.db.execute(sql + " ORDER BY slug", args).fetchall()
                return self.send(200, {"articles": [dict(r) for r in rows]})
            r = self.db.execute("SELECT slug, title, body, author_id FROM articles WHERE slug = ?", (rest[0],)).fetchone()
            if r is None:
                return self.problem(404, "no such article")
            if len(rest) == 1:
                return self.send(200, dict(r))
            if rest[1:] == ["comments"]:
                rows = self.db.execute("SELECT id, text FROM comments WHERE slug = ? ORDER BY id", (rest[0],)).fetchall()
                return self.send(200, {"comments": [dict(c) for c in rows]})
        return self.problem(404, "no such route")

    def articles_post(self, rest, query):
        v = self.read_json()
        with self.lock:
            if not rest:
                title, body, author = v.get("title"), v.get("body"), v.get("author_id")
                if not isinstance(title, str) or not title or not isinstance(body, str) or not isinstance(author, int):
                    return self.problem(422, "title, body and author_id are required")
                slug = slugify(title)
                self.db.execute("INSERT INTO articles VALUES (?, ?, ?, ?)", (slug, title, body, author))
                return self.send(201, {"slug": slug, "title": title, "body": body, "author_id": author})
            if len(rest) == 2 and rest[1] == "comments":
                text = v.get("text")
                if not isinstance(text, str) or not text:
                    return self.problem(422, "text is required")
                if self.db.execute("SELECT 1 FROM articles WHERE slug = ?", (rest[0],)).fetchone() is None:
                    return self.problem(404, "no such article")
                cur = self.db.execute("INSERT INTO comments (slug, text) VALUES (?, ?)", (rest[0], text))
                return self.send(201, {"id": cur.lastrowid, "text": text})
        return self.problem(405, "no such route")

    def articles_delete(self, rest, query):
        if len(rest) != 1:
            return self.problem(405, "no such route")
        with self.lock:
            self.db.execute("DELETE FROM comments WHERE slug = ?", (rest[0],))
            n = self.db.execute("DELETE FROM articles WHERE slug = ?", (rest[0],)).rowcount
        return self.send(204, b"") if n else self.problem(404, "no such article")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--port", type=int, default=8599)
    ap.add_argument("--db", default="pressroom.db")
    ap.add_argument("--modules", help="serve only these API modules (comma-separated)")
    a = ap.parse_args()
    Handler.db = open_db(a.db)
    seed(Handler.db)
    if a.modules:
        Handler.modules = set(a.modules.split(","))
    ThreadingHTTPServer(("127.0.0.1", a.port), Handler).serve_forever()


if __name__ == "__main__":
    main()
