#!/bin/sh
# Makes the home on the first `serve`, then runs hedgerow with the given arguments.
set -e
if [ "$1" = "serve" ] && [ ! -e "$HEDGEROW_HOME/hedgerow-home" ]; then
    hedgerow init --name "$HEDGEROW_NAME"
fi
exec hedgerow "$@"
