from xai_gen.cli import main

raise SystemExit(main())
