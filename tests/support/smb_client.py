#!/usr/bin/python3
"""An SMB2/3 client for the SMB tests (tests/posix/smb_test.cpp): Impacket,
an SMB implementation of its own (not Samba's), opening pipes on IPC$ as a
Windows program would.

    smb_client.py [--user NAME --password WORD] SERVER STEP...

Steps, each answered with one line on standard output:
    open:NAME          opens \\\\SERVER\\pipe\\NAME      -> "opened" | "error STATUS"
    write:TEXT         one write (a message)        -> "wrote N" | "error STATUS"
    write-size:N       one write of N bytes 'x'     -> "wrote N" | "error STATUS"
    read:N             one read of up to N bytes    -> "read TEXT" | "error STATUS"
    read-size:N        one read of up to N bytes    -> "read-size LENGTH" | "error STATUS"
    read-all:N         reads until N bytes came     -> "read TEXT" | "error STATUS"
    transact:TEXT      FSCTL_PIPE_TRANSCEIVE        -> "transact TEXT" | "error STATUS"
    close              closes the pipe              -> "closed"
    wait               prints "waiting", then waits for a line on standard input
A failed login prints "login error STATUS" and exits 1. Every call times out
(10 s), so nothing waits forever.
"""
import sys

from impacket.smbconnection import SessionError, SMBConnection

ACCESS = 0x0012019F  # GENERIC_READ | GENERIC_WRITE as a pipe open asks for them


def status(e):
    return e.getErrorString()[0]


def main(argv):
    user = password = ""
    while argv and argv[0] in ("--user", "--password"):
        if argv[0] == "--user":
            user = argv[1]
        else:
            password = argv[1]
        argv = argv[2:]
    server, steps = argv[0], argv[1:]
    conn = SMBConnection(server, server, sess_port=445, timeout=10)
    try:
        conn.login(user, password)
    except SessionError as e:
        print("login error", status(e), flush=True)
        return 1
    tree = conn.connectTree("IPC$")
    pipe = None
    for step in steps:
        verb, _, arg = step.partition(":")
        try:
            if verb == "open":
                pipe = conn.openFile(tree, "\\" + arg, desiredAccess=ACCESS)
                print("opened")
            elif verb in ("write", "write-size"):
                data = arg.encode() if verb == "write" else b"x" * int(arg)
                conn.writeNamedPipe(tree, pipe, data)
                print("wrote", len(data))
            elif verb == "read":
                print("read", conn.readNamedPipe(tree, pipe, int(arg)).decode())
            elif verb == "read-size":
                print("read-size", len(conn.readNamedPipe(tree, pipe, int(arg))))
            elif verb == "read-all":
                got = b""
                while len(got) < int(arg):
                    got += conn.readNamedPipe(tree, pipe, int(arg) - len(got))
                print("read", got.decode())
            elif verb == "transact":
                print("transact", conn.transactNamedPipe(tree, pipe, arg.encode()).decode())
            elif verb == "close":
                conn.closeFile(tree, pipe)
                print("closed")
            elif verb == "wait":
                print("waiting", flush=True)
                sys.stdin.readline()
            else:
                print("unknown step", step)
                return 2
        except SessionError as e:
            print("error", status(e))
        sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
