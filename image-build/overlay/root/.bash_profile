# Tabula live image: the autologin consoles start the station session once per login.
[ -f ~/.bashrc ] && . ~/.bashrc
case "$(tty)" in
  /dev/tty1|/dev/ttyS0) [ -z "${TABULA_SESSION:-}" ] && /usr/local/sbin/tabula-session ;;
esac
