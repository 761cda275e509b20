
œÅÖØçÍÉ9k8s.io/tasks/start"e
containerd.events.TaskStartF
@34da12ff21be74bc3aa26079f02004e5b3c86fbc8e01eff7ed2ede14091df068ë”*