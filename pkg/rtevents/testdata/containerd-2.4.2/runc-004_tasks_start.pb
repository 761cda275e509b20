
•ÅÖØã»Ûk8s.io/tasks/start"e
containerd.events.TaskStartF
@0bfc5132bf81855b00c36693761261d015f84424c81ee05ba0e16b30d5bef2da¢‹*