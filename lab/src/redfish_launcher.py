# sixboot_lab::redfish's BMC: sushy-tools' Redfish emulator over libvirt's embedded
# QEMU driver (qemu:///embed?root=DIR), in one process, in the lab's namespace.
#
# The embedded driver runs inside the process that opens it and needs a thread running
# libvirt's event loop (QEMU monitor I/O); sushy-tools opens and closes a connection per
# request, so one connection is held open here for the driver's whole life. The
# emulator's own main() is not used: its SIGCHLD handler reaps children libvirt waits
# for. On SIGTERM every running domain is destroyed (QEMU killed) before exiting.
#
# libvirt 9.0 registers the embedded driver again on every virConnectOpen of an embed
# URI; after about twenty opens it fails with "Too many drivers, cannot register QEMU".
# sushy-tools opens (and closes) a connection per request, so libvirt.open and
# libvirt.openReadOnly are pointed at the one connection held here (close is a no-op).
# Only how the emulator reaches libvirt changes, not what it answers over Redfish.
#
# Usage: python launcher.py URI DOMAIN_XML EMULATOR_CONFIG USER PASSWORD_FILE AUTH_FILE
import os
import signal
import ssl
import sys
import threading

import bcrypt
import libvirt

uri, domain_xml, config_file, user, password_file, auth_file = sys.argv[1:7]

with open(password_file, "rb") as f:
    password = f.read().splitlines()[0]
with open(auth_file, "w") as f:
    f.write(user + ":" + bcrypt.hashpw(password, bcrypt.gensalt(rounds=4)).decode() + "\n")

libvirt.virEventRegisterDefaultImpl()


def event_loop():
    while True:
        libvirt.virEventRunDefaultImpl()


threading.Thread(target=event_loop, daemon=True).start()
conn = libvirt.open(uri)
with open(domain_xml) as f:
    domain = conn.defineXML(f.read())
domain.create()
print("SIXBOOT-BMC domain", domain.name(), domain.UUIDString(), "started", flush=True)


class SharedConnection:
    """The held connection, for code that closes what it opens."""

    def __init__(self, connection):
        self._connection = connection

    def close(self):
        return 0

    def __getattr__(self, name):
        return getattr(self._connection, name)


libvirt.open = lambda name=None: SharedConnection(conn)
libvirt.openReadOnly = lambda name=None: SharedConnection(conn)


def stop(signum, frame):
    for d in conn.listAllDomains():
        try:
            if d.isActive():
                d.destroy()
        except libvirt.libvirtError as e:
            print("SIXBOOT-BMC cannot destroy", d.name(), e, flush=True)
    print("SIXBOOT-BMC stopped", flush=True)
    os._exit(0)


signal.signal(signal.SIGTERM, stop)
signal.signal(signal.SIGINT, stop)

from sushy_tools.emulator import main as emulator  # noqa: E402

app = emulator.app
app.configure(config_file=config_file)
context = None
if app.config.get("SUSHY_EMULATOR_SSL_CERT"):
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(app.config["SUSHY_EMULATOR_SSL_CERT"], app.config["SUSHY_EMULATOR_SSL_KEY"])
print("SIXBOOT-BMC listening", flush=True)
app.run(
    host=app.config["SUSHY_EMULATOR_LISTEN_IP"],
    port=app.config["SUSHY_EMULATOR_LISTEN_PORT"],
    ssl_context=context,
    threaded=True,
)
