"""The web console for people: an OpenID Connect client of identity and a backend-for-frontend."""

import warnings

from authlib.deprecate import AuthlibDeprecationWarning

# Authlib 1.9's Starlette client warns on import that httpx (which the project uses) is
# deprecated in favour of httpx2; every `nrm` command would print it to the operator. The
# filter goes after Authlib's own "always" filter (set when authlib.deprecate is imported).
warnings.filterwarnings(
    "ignore", message="The httpx module is deprecated", category=AuthlibDeprecationWarning
)
