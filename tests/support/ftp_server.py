"""A real FTP server (pyftpdlib) for the file-drop uplink tests.

Usage: ftp_server.py PORT ROOT USER PASSWORD LOG
Serves ROOT on 127.0.0.1:PORT to USER; appends the name of every file renamed into place
(the uploader's last step) to LOG, one per line, so a test can count deliveries.
"""
import logging
import os
import sys

from pyftpdlib.authorizers import DummyAuthorizer
from pyftpdlib.handlers import FTPHandler
from pyftpdlib.servers import FTPServer

port, root, user, password, log = sys.argv[1:6]


class Handler(FTPHandler):
    def ftp_RNTO(self, path):
        done = super().ftp_RNTO(path)
        if os.path.exists(path):
            with open(log, "a", encoding="utf-8") as f:
                f.write(os.path.basename(path) + "\n")
        return done


logging.basicConfig(level=logging.ERROR)
authorizer = DummyAuthorizer()
authorizer.add_user(user, password, root, perm="elradfmwMT")
Handler.authorizer = authorizer
server = FTPServer(("127.0.0.1", int(port)), Handler)
server.serve_forever()
