# fish completion for docker-cghistory, generated with argcomplete 3.7.2 by 'docker-cghistory completion fish'.
# Enable it:
#   docker-cghistory completion fish > ~/.config/fish/completions/docker-cghistory.fish
# ('docker cghistory' is completed by docker's own script: docker completion fish)
function __fish_docker-cghistory_complete
    set -lx _ARGCOMPLETE 1
    set -lx _ARGCOMPLETE_DFS \t
    set -lx _ARGCOMPLETE_IFS \n
    set -lx _ARGCOMPLETE_SUPPRESS_SPACE 1
    set -lx _ARGCOMPLETE_SHELL fish
    set -lx COMP_LINE (commandline -p)
    set -lx COMP_POINT (string length (commandline -cp))
    set -lx COMP_TYPE
    if set -q _ARC_DEBUG
        docker-cghistory 8>&1 9>&2 1>&9 2>&1
    else
        docker-cghistory 8>&1 9>&2 1>/dev/null 2>&1
    end
end
complete --command docker-cghistory -f -a '(__fish_docker-cghistory_complete)'
