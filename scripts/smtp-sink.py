#!/usr/bin/env python3
"""A real SMTP server for the tests (aiosmtpd, Debian's python3-aiosmtpd): every message it accepts is parsed with
Python's own e-mail package, as a mail client would, and written as JSON to --dir (one file per message).

    smtp-sink.py --port 2525 --dir /tmp/mails     # prints "ready" once it listens; stops on SIGTERM
"""
import argparse, asyncio, email, email.policy, json, os, signal, threading

from aiosmtpd.controller import Controller


class Sink:
    def __init__(self, directory):
        self.directory = directory
        self.count = 0
        self.lock = threading.Lock()

    async def handle_DATA(self, server, session, envelope):
        message = email.message_from_bytes(envelope.original_content or envelope.content, policy=email.policy.default)
        parts = {}
        for part in message.walk():
            if part.get_content_maintype() == "text":
                parts[part.get_content_type()] = part.get_content()
        record = {
            "mailFrom": envelope.mail_from,
            "rcptTos": envelope.rcpt_tos,
            "headerNames": [name for name in message.keys()],
            "headers": {name.lower(): str(value) for name, value in message.items()},
            "text": parts.get("text/plain"),
            "html": parts.get("text/html"),
            "defects": [str(defect) for defect in message.defects],
        }
        with self.lock:
            self.count += 1
            path = os.path.join(self.directory, "%04d.json" % self.count)
        with open(path + ".part", "w", encoding="utf-8") as out:
            json.dump(record, out, ensure_ascii=False)
        os.rename(path + ".part", path)
        return "250 Message accepted"


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--dir", required=True)
    args = parser.parse_args()
    os.makedirs(args.dir, exist_ok=True)
    controller = Controller(Sink(args.dir), hostname=args.host, port=args.port)
    controller.start()
    print("ready", flush=True)
    stop = threading.Event()
    # A test runner may start us with SIGTERM blocked (its threads' mask is inherited): take it back.
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM, signal.SIGINT})
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    while not stop.wait(0.2):
        pass
    controller.stop()


if __name__ == "__main__":
    main()
