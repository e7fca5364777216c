/* berth: an OCI distribution registry. `berth serve [-c FILE]`; the only file that knows every module. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "http/server.h"
#include "util/config.h"
#include "util/log.h"

static int usage(FILE *out)
{
    fprintf(out, "usage: berth serve [-c FILE]    run the registry\n"
                 "       berth config [-c FILE]   print the configuration in effect\n"
                 "       berth version\n"
                 "Configuration: a YAML file (-c, or BERTH_CONFIG), every key overridable by BERTH_<KEY>.\n");
    return out == stderr ? 2 : 0;
}

int main(int argc, char **argv)
{
    const char *conf_path = getenv("BERTH_CONFIG");
    if (argc < 2)
        return usage(stderr);
    const char *cmd = argv[1];
    if (strcmp(cmd, "-h") == 0 || strcmp(cmd, "--help") == 0 || strcmp(cmd, "help") == 0)
        return usage(stdout);
    if (strcmp(cmd, "version") == 0 || strcmp(cmd, "--version") == 0) {
        printf("berth %s\n", PACKAGE_VERSION);
        return 0;
    }
    for (int i = 2; i < argc; ++i) {
        if ((strcmp(argv[i], "-c") == 0 || strcmp(argv[i], "--config") == 0) && i + 1 < argc) {
            conf_path = argv[++i];
        } else {
            fprintf(stderr, "berth: unknown argument %s\n", argv[i]);
            return usage(stderr);
        }
    }
    if (conf_path != NULL && *conf_path == '\0')
        conf_path = NULL;

    config_t cfg;
    char *err = NULL;
    if (config_load(&cfg, conf_path, &err) != 0) {
        fprintf(stderr, "berth: %s\n", err);
        free(err);
        return 1;
    }
    log_set_level((log_level_t)log_level_from_name(cfg.log_level));
    if (strcmp(cmd, "config") == 0) {
        config_print(&cfg);
        config_dispose(&cfg);
        return 0;
    }
    if (strcmp(cmd, "serve") == 0)
        return server_run(&cfg);
    fprintf(stderr, "berth: unknown command %s\n", cmd);
    config_dispose(&cfg);
    return usage(stderr);
}
