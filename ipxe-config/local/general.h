/*
 * sixboot: iPXE build configuration, copied to config/local/general.h of the
 * build tree.  iPXE reads it after its own config/general.h, so every line
 * here overrides upstream without touching a tracked file.
 */

/*
 * IPv6.  Upstream #undefs it in every BIOS build ("not historically
 * included"); our whole purpose is booting over IPv6.  About 4.5 KB in a
 * compressed BIOS ROM.
 */
#define NET_PROTO_IPV6

/*
 * HTTPS, so kernels, initrds and scripts can come from a server whose
 * certificate is signed by a CA we trust (see `--trust CA.pem`).  Upstream
 * leaves it out of BIOS builds.
 */
#define DOWNLOAD_PROTO_HTTPS

/*
 * Commands an operator needs at the iPXE shell when a boot goes wrong:
 * ping (is the server reachable over IPv6 at all?), ipstat (IP and ICMPv6
 * counters: are RAs and replies arriving?), nslookup (does the name in the
 * boot URL resolve to an AAAA record?), neighbour (the NDP cache: did the
 * router/server answer neighbour solicitation?), poweroff and reboot (to
 * leave a console session cleanly; upstream enables them already where the
 * platform can reboot, listed here so the intent is explicit).
 */
#define PING_CMD
#define IPSTAT_CMD
#define NSLOOKUP_CMD
#define NEIGHBOUR_CMD
#define POWEROFF_CMD
#define REBOOT_CMD

/*
 * No "Press Ctrl-B to configure iPXE" wait during POST (legacy BIOS ROMs
 * only; upstream waits 2 * BANNER_TIMEOUT = 4 s on every boot).  Our ROMs
 * always carry an embedded script, and iPXE runs an embedded script without
 * offering its shell, so a Ctrl-B at POST would only start that script
 * early: the 4 s bought nothing.  What it costs: no POST-time hook into
 * iPXE.  The shell stays reachable: the default script offers Ctrl-B for
 * 3 s when a boot fails, before it exits to the next boot device.
 */
#undef ROM_BANNER_TIMEOUT
#define ROM_BANNER_TIMEOUT 0
