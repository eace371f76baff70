# apt sources: bookworm-backports and trixie, trixie pinned low (priority 100) so that nothing
# from it is installed on the host unless a step asks for it by name.
apt_changed=0
write_if_changed() { # PATH CONTENT
  if [ ! -f "$1" ] || [ "$(cat "$1")" != "$2" ]; then
    log "writing $1"
    printf '%s\n' "$2" | $SUDO tee "$1" >/dev/null
    apt_changed=1
  fi
}
write_if_changed /etc/apt/sources.list.d/nodeimg.sources "Types: deb
URIs: http://deb.debian.org/debian
Suites: bookworm-backports trixie
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg"
write_if_changed /etc/apt/preferences.d/nodeimg-trixie "Package: *
Pin: release n=trixie
Pin-Priority: 100"
stamp=/var/lib/apt/lists/nodeimg.stamp
if [ "$apt_changed" = 1 ] || [ ! -f "$stamp" ] || [ -n "$(find "$stamp" -mmin +1440)" ]; then
  log "apt-get update"
  $SUDO apt-get update -qq
  $SUDO touch "$stamp"
fi
