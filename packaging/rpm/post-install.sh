# The state is root's alone (the PAM module refuses a directory anyone else
# could write); an existing one is the site's and is left as it is.
if [ ! -e /var/lib/deadbolt ]; then
    install -d -m 0700 -o root -g root /var/lib/deadbolt
fi
