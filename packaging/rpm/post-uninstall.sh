# The state (locks, password history) is kept; say where.
if [ "$1" -eq 0 ] && [ -d /var/lib/deadbolt ]; then
    echo "deadbolt: kept the state in /var/lib/deadbolt; remove it with: rm -r /var/lib/deadbolt" >&2
fi
