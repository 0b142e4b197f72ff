"""One ``APIRouter`` per endpoint group; each route reads the shared ``ServerState`` from ``request.app.state``."""
