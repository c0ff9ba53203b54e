from heliogrid_agent.cli import main

raise SystemExit(main())
