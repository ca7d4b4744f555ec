/*
 * An NSS module for the tests, loaded by nss_wrapper
 * (NSS_WRAPPER_MODULE_SO_PATH, NSS_WRAPPER_MODULE_FN_PREFIX=fold), which
 * asks it before its own passwd file. It answers any spelling of a user of
 * the passwd file named by $DEADBOLT_FOLD_PASSWD, case folded, with the
 * entry as the file has it: what sssd does with `case_sensitive = false`
 * or winbind with its default, and what files-backed NSS never does.
 */
#include <errno.h>
#include <nss.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Copies `text` into the caller's buffer; NULL when it does not fit. */
static char *put(char **cursor, size_t *left, const char *text)
{
	size_t size = strlen(text) + 1;
	char *at = *cursor;

	if (size > *left)
		return NULL;
	memcpy(at, text, size);
	*cursor += size;
	*left -= size;
	return at;
}

static enum nss_status lookup(const char *name, uid_t uid, struct passwd *pwd,
			      char *buffer, size_t buflen, int *errnop)
{
	const char *path = getenv("DEADBOLT_FOLD_PASSWD");
	enum nss_status status = NSS_STATUS_NOTFOUND;
	struct passwd *entry;
	FILE *file;

	if (path == NULL)
		return NSS_STATUS_UNAVAIL;
	file = fopen(path, "re");
	if (file == NULL) {
		*errnop = errno;
		return NSS_STATUS_UNAVAIL;
	}
	while ((entry = fgetpwent(file)) != NULL) {
		char *cursor = buffer;
		size_t left = buflen;

		if (name != NULL ? strcasecmp(entry->pw_name, name) != 0
				 : entry->pw_uid != uid)
			continue;
		pwd->pw_uid = entry->pw_uid;
		pwd->pw_gid = entry->pw_gid;
		if ((pwd->pw_name = put(&cursor, &left, entry->pw_name)) == NULL ||
		    (pwd->pw_passwd = put(&cursor, &left, entry->pw_passwd)) == NULL ||
		    (pwd->pw_gecos = put(&cursor, &left, entry->pw_gecos)) == NULL ||
		    (pwd->pw_dir = put(&cursor, &left, entry->pw_dir)) == NULL ||
		    (pwd->pw_shell = put(&cursor, &left, entry->pw_shell)) == NULL) {
			*errnop = ERANGE;
			status = NSS_STATUS_TRYAGAIN;
		} else {
			status = NSS_STATUS_SUCCESS;
		}
		break;
	}
	fclose(file);
	return status;
}

enum nss_status _nss_fold_getpwnam_r(const char *name, struct passwd *pwd,
				     char *buffer, size_t buflen, int *errnop)
{
	return lookup(name, 0, pwd, buffer, buflen, errnop);
}

enum nss_status _nss_fold_getpwuid_r(uid_t uid, struct passwd *pwd,
				     char *buffer, size_t buflen, int *errnop)
{
	return lookup(NULL, uid, pwd, buffer, buflen, errnop);
}
