"""A real FTP server (pyftpdlib) for the file-drop uplink tests.

Usage: ftp_server.py PORT ROOT USER PASSWORD LOG
Serves ROOT on 127.0.0.1:PORT to USER; appends the name of every file renamed into place
(the uploader's last step) to LOG, one per line, so a test can count deliveries.
"""
import logging
import os
import sys

from pyftpdlib.authorizers import DummyAuthorizer
from pyftpdlib.filesystems import FilesystemError
from pyftpdlib.handlers import FTPHandler
from pyftpdlib.servers import FTPServer

port, root, user, password, log = sys.argv[1:6]


class Handler(FTPHandler):
    def ftp_RNTO(self, path):
        # As pyftpdlib's own RNTO, with the delivery logged *before* the client hears "250",
        # so a test that saw its push succeed finds it in the log.
        if not self._rnfr:
            self.respond("503 Bad sequence of commands: use RNFR first.")
            return None
        src, self._rnfr = self._rnfr, None
        try:
            self.run_as_current_user(self.fs.rename, src, path)
        except (OSError, FilesystemError) as err:
            self.respond(f"550 {err}.")
            return None
        with open(log, "a", encoding="utf-8") as f:
            f.write(os.path.basename(path) + "\n")
        self.respond("250 Renaming ok.")
        return (src, path)


logging.basicConfig(level=logging.ERROR)
authorizer = DummyAuthorizer()
authorizer.add_user(user, password, root, perm="elradfmwMT")
Handler.authorizer = authorizer
server = FTPServer(("127.0.0.1", int(port)), Handler)
server.serve_forever()
