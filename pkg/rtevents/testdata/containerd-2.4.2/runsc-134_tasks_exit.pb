
œÅÖØôë°Ük8s.io/tasks/exit"¸
containerd.events.TaskExit™
@34da12ff21be74bc3aa26079f02004e5b3c86fbc8e01eff7ed2ede14091df068@34da12ff21be74bc3aa26079f02004e5b3c86fbc8e01eff7ed2ede14091df068ë”* ‰*œÅÖØüüøÛ