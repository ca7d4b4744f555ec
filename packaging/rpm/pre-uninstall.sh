# $1 is 0 on removal, 1 on upgrade. authselect profiles are the site's:
# name the PAM files that still load the module, which would refuse logins.
if [ "$1" -eq 0 ]; then
    left=$(grep -lsE '(^|[[:space:]/])pam_deadbolt\.so' /etc/pam.d/* /etc/authselect/custom/*/* 2>/dev/null || true)
    if [ -n "$left" ]; then
        echo "deadbolt: remove pam_deadbolt.so from" $left "and run authselect apply-changes" >&2
    fi
fi
